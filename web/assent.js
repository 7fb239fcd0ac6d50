/*
  Assent: consent banner, script gating and opt-in first-party tracker.
  Served by the Assent server at /s/{site}/assent.js with the token below
  replaced by the site's settings (see docs/banner.md).

  Source rules (build.rs minifies this file line by line, without a parser):
  - comments only as whole lines: lines starting with two slashes, or
    slash-star blocks that start a line and end a line;
  - never two slashes in a row inside a code line, not in strings and not in
    regular expressions (write [/] for a slash in a regex);
  - explicit semicolons everywhere; no string or template literal that spans
    lines;
  - the configuration token appears exactly once, as an expression.
  Nothing here may use eval, new Function, innerHTML or inline handlers.
*/
(function(W,D,N,L){
if(W.assent)return;
var C=__ASSENT_CONFIG__;
var O=C.options||{},A=C.api,K='assent_consent',cats=C.categories,opt=cats.filter(c=>!c.required);
var S=null,old,root,ban,dlg,fab,opener,css,busy,on=0,first,last,cur,eng=0,since=0;
// a string body goes as text/plain, like sendBeacon: no CORS preflight
var TP={method:'POST',keepalive:true};
var dom=new Promise(r=>D.readyState=='loading'?D.addEventListener('DOMContentLoaded',r):r());

// ---- language and texts
var lang=[D.documentElement.lang].concat(N.languages||[]).map(x=>(x||'').toLowerCase().split('-')[0]).find(x=>C.texts[x])||(C.texts[C.default_language]?C.default_language:Object.keys(C.texts)[0]);
var X=C.texts[lang]||{},XC=X.categories||{},dir=X.dir||'ltr';
function cat(id){return XC[id]||{};}
function ttl(id){return cat(id).title||id;}
function sub(s,id){return (s||'').split('{category}').join(ttl(id));}

// ---- DOM helpers: text goes in through append(), never as markup
function h(t,a,c){
var e=D.createElement(t),k;
for(k in a)e.setAttribute(k,a[k]);
if(c)e.append.apply(e,c.filter(x=>x!=null));
return e;
}
function btn(t,f,c){var b=h('button',{type:'button',class:c||'assent-btn'},[t]);b.onclick=f;return b;}
function ld(){
return css||(css=dom.then(()=>new Promise(r=>{
var l=h('link',{rel:'stylesheet',href:A+'/s/assent.css'});
l.onload=l.onerror=r;
D.head.append(l);
})).then(()=>{
root=h('div',{id:'assent',class:'assent',lang:lang,dir:dir});
D.body.prepend(root);
}));
}

// ---- the choice: cookie, server record, event
function read(){
var m=D.cookie.match(/(?:^|;) *assent_consent=([^;]*)/);
try{m=m&&JSON.parse(decodeURIComponent(m[1]));}catch(e){m=null;}
return m&&m.choices?m:null;
}
function valid(s){return s&&s.revision==C.revision&&Date.parse(s.expires_at)>Date.now();}
function consent(){return S&&JSON.parse(JSON.stringify(S));}
// f(category id) tells whether that category is granted
function choose(f,act){
var p=S,id=(S||old||{}).id,c={},b;
cats.forEach(x=>c[x.id]=!!(x.required||f(x.id)));
if(p&&opt.some(x=>p.choices[x.id])&&!opt.some(x=>c[x.id]))act='withdraw';
S={id:id||null,revision:C.revision,choices:c,expires_at:null};
close();
if(ban){ban.remove();ban=null;}
apply();
b={site:C.site,revision:C.revision,choices:c,action:act,language:lang,url:L.pathname};
if(id)b.consent_id=id;
return fetch(A+'/api/consent',Object.assign({body:JSON.stringify(b)},TP)).then(r=>r.ok?r.json():0).then(j=>{
if(j&&j.consent_id){
S={id:j.consent_id,revision:j.revision,choices:j.choices,expires_at:j.expires_at};
D.cookie=K+'='+encodeURIComponent(JSON.stringify(S))+';Max-Age='+(Math.min((Date.parse(S.expires_at)-Date.now())/1e3,3.37e7)|0)+';Path=/;SameSite=Lax'+(L.protocol=='https:'?';Secure':'');
apply();
}
},()=>0).then(()=>{D.dispatchEvent(new CustomEvent('assent:consent',{detail:consent()}));return consent();});
}
function apply(){
var g=S?S.choices:{};
if(S)wipe(g);
gate(g);
gcm('update',g);
// the tracker starts once the server has recorded the grant; a refusal stops it at once
if(!g.analytics||!C.domains.some(d=>L.hostname==d||L.hostname.endsWith('.'+d)))stop();else if(S.expires_at)start();
if(S&&O.floating_button&&!fab)ld().then(()=>{
if(!fab)root.append(fab=btn('',()=>open(fab),'assent-fab'));
fab.title=X.floating;
});
}
// cookies of every category that is not granted, by name pattern (* = any)
function wipe(g){
cats.forEach(c=>{
if(g[c.id]||c.required)return;
(c.services||[]).forEach(v=>(v.cookies||[]).forEach(p=>{
var r=new RegExp('^'+p.replace(/[$.^|+]/g,'\\$&').replace(/\*/g,'.*')+'$');
D.cookie.split(';').forEach(x=>{
var n=x.split('=')[0].trim(),d=L.hostname.split('.'),i;
if(!n||n==K||!r.test(n))return;
for(i=0;i<d.length;i++)D.cookie=n+'=;Max-Age=0;Path=/'+(i?';Domain=.'+d.slice(i-1).join('.'):'');
});
}));
});
}
function gcm(t,g){
if(!O.google_consent_mode)return;
var a=g.analytics?'granted':'denied',m=g.marketing?'granted':'denied';
W.gtag('consent',t,{analytics_storage:a,ad_storage:m,ad_user_data:m,ad_personalization:m});
}

// ---- gating of scripts and iframes
function ok(e){return S&&e.dataset.assentCategory.split(' ').every(c=>S.choices[c]);}
function gate(){
D.querySelectorAll('iframe[data-assent-category][data-src]').forEach(f=>{
var t=f.dataset.assentCategory.split(' ')[0],p;
if(ok(f)){
if(f.assentPh)f.assentPh.remove();
f.src=f.dataset.src;
delete f.dataset.src;
f.style.display='';
}else if(!f.assentPh)ld().then(()=>{
if(f.assentPh||!f.dataset.src)return;
p=f.assentPh=h('div',{class:'assent assent-ph',lang:lang,dir:dir},[h('p',{},[sub(X.blocked,t)]),btn(sub(X.allow,t),()=>choose(x=>x==t||S&&S.choices[x],'custom'))]);
p.style.width=(f.offsetWidth||300)+'px';
p.style.minHeight=(f.offsetHeight||150)+'px';
f.style.display='none';
f.before(p);
});
});
run();
}
// gated scripts run one at a time in document order: a src script loads first
function run(){
if(busy)return;
var s=[].find.call(D.querySelectorAll('script[type="text/plain"][data-assent-category]'),ok),n,i;
if(!s)return;
n=D.createElement('script');
for(i of s.attributes)if(i.name!='type')n.setAttribute(i.name,i.value);
n.nonce=s.nonce;
if(s.src){busy=1;n.onload=n.onerror=()=>{busy=0;run();};}else n.text=s.text;
s.replaceWith(n);
if(!s.src)run();
}

// ---- the banner and the preferences dialog
function banner(){
return ld().then(()=>{
if(S||ban)return;
var pu=O.privacy_url;
ban=h('section',{class:'assent-ban','aria-labelledby':'assent-t'},[
h('h2',{id:'assent-t'},[X.title]),
h('p',{},[X.description,pu?' ':null,pu?h('a',{href:pu},[X.privacy_policy]):null]),
h('div',{class:'assent-row'},[btn(X.accept_all,W.assent.acceptAll),btn(X.reject_all,W.assent.rejectAll),btn(X.customise,e=>open(e.currentTarget))])]);
root.append(ban);
});
}
function open(o){
opener=o||D.activeElement;
return ld().then(()=>{
if(dlg)return;
var g=S?S.choices:{},box,sw=[];
box=h('div',{class:'assent-dlg',role:'dialog','aria-modal':'true','aria-labelledby':'assent-pt',tabindex:'-1'},[
btn('\u00d7',close,'assent-x'),
h('h2',{id:'assent-pt'},[X.preferences_title]),
h('p',{},[X.preferences_description])].concat(cats.map(c=>{
var id='assent-c-'+c.id,i=h('input',{type:'checkbox',role:'switch',id:id,'aria-describedby':id+'-d'}),sv=c.services||[];
i.checked=!!(c.required||g[c.id]);
i.disabled=!!c.required;
i.name=c.id;
sw.push(i);
return h('div',{class:'assent-cat'},[
h('div',{class:'assent-hd'},[h('label',{for:id},[ttl(c.id)]),c.required?h('span',{},[X.always_on]):null,i]),
h('p',{id:id+'-d'},[cat(c.id).description]),
sv.length?h('ul',{'aria-label':X.services},sv.map(v=>h('li',{},[h('b',{},[v.name]),' \u00b7 '+X.cookies+': '+((v.cookies||[]).join(', ')||X.none)]))):null]);
}),[h('div',{class:'assent-row'},[btn(X.accept_all,W.assent.acceptAll),btn(X.reject_all,W.assent.rejectAll),btn(X.save,()=>choose(x=>sw.find(i=>i.name==x).checked,'custom'))])]));
box.firstChild.setAttribute('aria-label',X.close);
box.onkeydown=e=>{
var f=box.querySelectorAll('button,input:not(:disabled),a[href]'),a=f[0],z=f[f.length-1],t=D.activeElement;
if(e.key=='Escape'){e.preventDefault();close();}
else if(e.key=='Tab'&&(e.shiftKey?t==a||t==box:t==z)){e.preventDefault();(e.shiftKey?z:a).focus();}
};
dlg=h('div',{class:'assent-ov'},[box]);
dlg.onclick=e=>{if(e.target==dlg)box.focus();};
if(ban)ban.hidden=true;
root.append(dlg);
box.focus();
// "Your data" (web/rights.js) loads only now, for a visitor with a consent id
if(S&&S.id)D.head.append(h('script',{src:A+'/s/'+C.site+'/assent.js?rights='+lang}));
});
}
function close(){
if(!dlg)return;
dlg.remove();
dlg=null;
if(ban)ban.hidden=false;
if(opener&&opener.isConnected)opener.focus();
opener=null;
}

// ---- the tracker: only while analytics is granted and the choice is recorded
function start(){if(!on){on=first=1;tick();pv();}}
function stop(){on=eng=since=0;last=cur=null;}
function ev(n,b,bc){
if(!on)return;
var u=A+'/api/event',s=JSON.stringify(Object.assign({site:C.site,consent_id:S.id,name:n,url:L.href},b));
if(bc&&N.sendBeacon)N.sendBeacon(u,s);else fetch(u,Object.assign({body:s},TP)).catch(()=>0);
}
function key(){var x=L.hash;return L.pathname+(/^#!?[/]/.test(x)?x:'');}
function pv(){
if(!on||key()==last)return;
flush();
last=key();
cur=L.href;
var b={screen_width:screen.width};
if(first&&D.referrer)b.referrer=D.referrer;
first=0;
ev('pageview',b);
}
// engaged time: the page is visible and focused
function tick(){var t=Date.now();if(since)eng+=t-since;since=on&&!D.hidden&&D.hasFocus()?t:0;}
function flush(bc){tick();if(on&&cur&&eng>0)ev('engagement',{url:cur,engaged_ms:Math.round(eng)},bc);eng=0;}
addEventListener('focus',tick);
addEventListener('blur',tick);
addEventListener('pagehide',()=>flush(1));
D.addEventListener('visibilitychange',()=>D.hidden?flush(1):tick());
D.addEventListener('click',e=>{
var t=e.target,o=t.closest('[data-assent-open]'),a,l,p={},x;
if(o){e.preventDefault();open(o);}
if(!on)return;
a=t.closest('[data-assent-event]');
l=t.closest('a[href]');
if(a){for(x of a.attributes)if(!x.name.indexOf('data-assent-prop-'))p[x.name.slice(17)]=x.value;ev(a.dataset.assentEvent,{props:p});}
if(l&&/^http/.test(l.protocol)){
if(O.file_downloads&&/\.(pdf|docx?|xlsx?|pptx?|od[tsp]|csv|txt|zip|rar|7z|t?gz|dmg|exe|msi|apk|iso|epub|mp[34]|wav|mov|avi|webm)$/i.test(l.pathname))ev('File Download',{props:{url:l.href}});
else if(O.outbound_links&&l.host!=L.host)ev('Outbound Link: Click',{props:{url:l.href}});
}
},true);
if(O.spa){
['pushState','replaceState'].forEach(m=>{var f=history[m];history[m]=function(){var r=f.apply(this,arguments);pv();return r;};});
addEventListener('popstate',pv);
addEventListener('hashchange',pv);
}

// ---- public API and start
W.assent={
open:()=>open(),
consent:consent,
acceptAll:()=>choose(()=>1,'accept_all'),
rejectAll:()=>choose(()=>0,'reject_all'),
// props: a flat object of strings, numbers and booleans
track:(n,p)=>{var o={},k;for(k in p)if(/^(str|num|boo)/.test(typeof p[k]))o[k]=p[k];ev(String(n),{props:o});},
// after an erasure (web/rights.js, which also clears the cookie and tells the page): no choice, the banner again
_forget:()=>{S=old=null;wipe({});close();apply();return banner();}
};
if(O.google_consent_mode){
W.dataLayer=W.dataLayer||[];
W.gtag=W.gtag||function(){W.dataLayer.push(arguments);};
gcm('default',{});
}
old=read();
if(valid(old))gcm('update',old.choices);
function init(){
if(D.prerendering)return D.addEventListener('prerenderingchange',init,{once:true});
if(valid(old)){S=old;apply();}
else{gate();if(N.globalPrivacyControl===true||C.gpc)choose(()=>0,'gpc');else banner();}
}
dom.then(init);
})(window,document,navigator,location);
